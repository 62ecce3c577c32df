# frozen_string_literal: true

require "date"
require "time"

module TaskerCore
  # Turns handler results into JSON-compatible values, predictably:
  #
  # | Ruby value                         | JSON                                  |
  # |------------------------------------|---------------------------------------|
  # | Hash                               | object; keys become strings (Symbol keys by name) |
  # | Array                              | array                                 |
  # | String, Integer, true, false, nil  | themselves                            |
  # | Float                              | number; NaN and Infinity are refused  |
  # | Symbol                             | string (its name)                     |
  # | Time, DateTime                     | ISO 8601 string with fraction and offset |
  # | Date                               | ISO 8601 date string                  |
  # | BigDecimal, Rational               | string, exact (`"12.3"`, `"1/3"`)     |
  # | anything with #to_h                | its hash, converted the same way      |
  #
  # Anything else raises ConversionError naming where it was, which the worker records
  # as a permanent failure.
  module Conversion
    module_function

    def to_json_value(value, path = "result")
      case value
      when Hash
        value.each_with_object({}) do |(k, v), out|
          key = k.is_a?(Symbol) ? k.to_s : k
          raise ConversionError, "#{path} has a #{k.class} key (#{k.inspect}); keys must be strings or symbols" unless key.is_a?(String)

          out[key] = to_json_value(v, "#{path}.#{key}")
        end
      when Array
        value.each_with_index.map { |v, i| to_json_value(v, "#{path}[#{i}]") }
      when String, Integer, true, false, nil
        value
      when Float
        raise ConversionError, "#{path} is #{value}, which JSON cannot represent" if value.nan? || value.infinite?

        value
      when Symbol
        value.to_s
      when Time
        value.iso8601(6)
      when DateTime
        value.iso8601(6)
      when Date
        value.iso8601
      when Rational
        value.to_s
      else
        if defined?(BigDecimal) && value.is_a?(BigDecimal)
          value.to_s("F")
        elsif value.respond_to?(:to_h)
          hash = begin
            value.to_h
          rescue StandardError => e
            raise ConversionError, "#{path} is a #{value.class} whose #to_h failed: #{e.message}"
          end
          to_json_value(hash, path)
        else
          raise ConversionError, "#{path} is a #{value.class}, which has no JSON form; return a Hash, Array, String, number, boolean or nil"
        end
      end
    end

    # The JSON text of a handler's result.
    def dump(value)
      JSON.generate(to_json_value(value))
    end
  end
end
