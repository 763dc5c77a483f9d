"""The loops that drive an engine into a sink: windows and chunks, worker processes, real-time pacing."""
