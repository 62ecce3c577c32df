# frozen_string_literal: true

# Loads every example handler: `tasker-ruby-worker --require app/tasker/handlers.rb`.
Dir[File.join(__dir__, "handlers", "**", "*.rb")].sort.each { |f| require f }
