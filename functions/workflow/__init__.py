"""The Step Functions tasks of the asynchronous path: Submit, Poll, Cleanup (Lambda entry points)."""
