"""The citywatch service: sign-in and a JSON API over the governed actions (``citywatch serve``)."""
