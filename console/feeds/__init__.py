"""Live feeds: blocking sources read on worker threads, posted to the app as immutable messages."""
