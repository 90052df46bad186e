"""What operators see and do: reports, health, metrics, replay checks, retention."""
