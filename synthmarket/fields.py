"""The fields of a bar, in the order every array of bars in synthmarket holds them.

A module of its own, importing nothing, so that Monte-Carlo workers (which get bars as arrays)
share the order without loading pandas; :mod:`synthmarket.paths` offers it to users too.
"""

FIELDS = ("open", "high", "low", "close", "volume")
