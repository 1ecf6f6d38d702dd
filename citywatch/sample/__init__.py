"""Synthetic sample footage: cameras, people, vehicles with rendered plates, a patrol car
with GPS, and the ground truth the tests and the demo check against. Imports only the core."""
