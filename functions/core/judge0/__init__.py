"""The Judge0 CE 1.13.1 API (`/judge0`) on this service's core: Judge0's shapes in and out, our runs inside.

`models` holds Judge0's documents, `statuses` the one table from our verdicts to Judge0's statuses,
`submissions` the translation both ways (a submission to an /execute request, a run or an execution back
to a submission), and `service` the calls the routes make. Nothing here runs anything itself: a submission
with `wait=true` is a run of the synchronous service, one with `wait=false` an asynchronous execution whose
id is the submission's token.
"""
