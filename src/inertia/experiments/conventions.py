"""Claims on conventions: practitioner, normalised and canonical forms give identical iterates."""
