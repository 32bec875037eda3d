"""`autoscaler simulate`: replay request traces through the decision core; cost vs latency."""
