"""The ask/tell benchmark: cycles per second through a real Polytrial server.

    python -m benchmarks.asktell [--seconds 5] [--clients 1,4,16]

For each database (SQLite file, PostgreSQL when a URL is given) and each
client count, real client processes ask (SuggestTrials, Sobol) and tell
(CompleteTrial) as fast as they can — all on one experiment, and spread over
one experiment each — against a real `polytrial serve` process. In the same
run the same client counts call a bare gRPC echo server, and each rate is
printed as a share of the echo pair rate (an ask/tell cycle is two calls).
Then the server's resident memory after 10,000 trials, and the latency of
one suggest and one list page at 10,000 trials against an empty experiment.
"""
