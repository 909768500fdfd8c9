"""The push side: who a server is (keys) and how many requests share one commit."""
