"""Prompt templates, one module per graph node, each in Chinese and English."""
