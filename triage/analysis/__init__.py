"""Analysis of file content: hashing, file types, hash-set lookups, YARA."""
