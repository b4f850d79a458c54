"""Pure prioritisation: case facts + triage facts + clock + policy -> score with reasons."""
