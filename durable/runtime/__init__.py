"""Runtime: advance one run in this process (replay its history, run its next commands, record
them, block it when the code cannot replay it), and count and log what happened."""
