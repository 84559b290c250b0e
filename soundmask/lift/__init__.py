"""Lifting 2D sound masks onto Gaussians: voting, grouping, association, refinement, tagging, query."""
