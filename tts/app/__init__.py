"""The application: one way to open and run a run (runner), run folders, jobs, CLI, server, report, telemetry."""
