"""The read side of the model: as-of versions, export scopes, fast frame readers, network layers."""
