"""The Sightline CDK app (``python -m cdk.app``): config, constants, stacks, constructs."""
