"""What a solve returns: the result object, dense output (single and batched), events,
the progress bar and the messages and warnings the user sees."""
