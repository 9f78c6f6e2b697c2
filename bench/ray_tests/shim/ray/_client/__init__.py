"""Stands in for ``ray.util.client`` (Ray Client), which raggio does not implement."""
