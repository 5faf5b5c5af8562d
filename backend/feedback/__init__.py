"""Answer feedback and the verified examples it feeds (per connection)."""
