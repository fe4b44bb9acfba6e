"""One stack per concern of a Sightline stage."""
