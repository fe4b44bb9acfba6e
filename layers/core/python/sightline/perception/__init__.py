"""Perception on one machine: a real pretrained detector, motion and tracking, turned into
events with times and a description in words (the local stand-in for a VLM)."""
