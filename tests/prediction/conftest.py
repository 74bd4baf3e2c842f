"""The prediction tests share history_support (a history whose truth is known)."""
