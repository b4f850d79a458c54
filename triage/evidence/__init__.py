"""Evidence access: confinement to evidence roots, format detection, read-only image access,
volume systems and file-system walking."""
