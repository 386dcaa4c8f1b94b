"""Authorization: the policy (data), and what is generated from it (field guards, operation guards, row scopes)."""
