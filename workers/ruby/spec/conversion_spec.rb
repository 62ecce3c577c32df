# frozen_string_literal: true

require "spec_helper"
require "bigdecimal"

RSpec.describe TaskerCore::Conversion do
  it "converts keys, symbols, times and exact numbers predictably" do
    value = {
      status: :captured,
      "n" => 3,
      "f" => 1.5,
      at: Time.utc(2026, 1, 2, 3, 4, 5),
      day: Date.new(2026, 1, 2),
      total: BigDecimal("12.30"),
      third: Rational(1, 3),
      list: [1, :two, nil, true]
    }
    expect(described_class.to_json_value(value)).to eq(
      "status" => "captured",
      "n" => 3,
      "f" => 1.5,
      "at" => "2026-01-02T03:04:05.000000Z",
      "day" => "2026-01-02",
      "total" => "12.3",
      "third" => "1/3",
      "list" => [1, "two", nil, true]
    )
  end

  it "uses #to_h for structs" do
    point = Struct.new(:x, :y).new(1, 2)
    expect(described_class.to_json_value(point)).to eq("x" => 1, "y" => 2)
  end

  it "refuses what JSON cannot hold, saying where" do
    expect { described_class.to_json_value({ "a" => [1, Object.new] }) }
      .to raise_error(TaskerCore::ConversionError, /result\.a\[1\] is a Object/)
    expect { described_class.to_json_value({ "x" => Float::NAN }) }
      .to raise_error(TaskerCore::ConversionError, /result\.x is NaN/)
    expect { described_class.to_json_value({ 1 => "a" }) }
      .to raise_error(TaskerCore::ConversionError, /Integer key/)
  end
end
