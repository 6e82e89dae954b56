"""Live updates: the event bus, and (later) the browser WebSocket."""
