"""Axon InfraLinter: a Terraform security linter judged by a LoRA-fine-tuned code LLM."""

__version__ = "0.1.0"
