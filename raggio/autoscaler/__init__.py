"""The autoscaler: nodes come for pending work and go when idle."""
