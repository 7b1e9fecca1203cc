"""Terraform text: the bottom layer that the data set, the model and the linter all read through.

- `lexer`: the one HCL lexer (comments, quoted strings with `${...}` / `%{...}` templates, heredocs),
  `strip_comments` and `normalize_whitespace`.
- `blocks`: top-level blocks (`split_blocks`), `count_lines`, `# axon:ignore` suppressions.
- `chunks`: `plan_chunks`, the units the model judges (a whole file, or block by block).

Nothing here imports from `data`, `models` or `lint`.
"""
