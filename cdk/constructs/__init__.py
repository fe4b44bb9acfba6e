"""Reusable constructs of the Sightline CDK app."""
