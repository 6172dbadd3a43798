"""Reports on finished runs: tables, figures, bootstrap intervals, paired comparisons, videos."""
