"""The Polytrial server: storage, the suggestion engine, and the gRPC handlers."""
