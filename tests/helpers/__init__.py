"""What several test files share: tiny models, small assistants, Rasa's command line."""
