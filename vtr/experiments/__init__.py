"""The application floor: what `vtr eval`, `vtr search`, the lmms-eval model and the book share.

- `policies`: a method by name (`vtr.catalogue`) as a Policy for a model;
- `searches`: G-Search and P-Sigmoid scored on validation questions, saved once;
- `evaluations`: one method at one budget on a split, resumable, one record in the store;
- `store`: the results store (records and saved JSON results);
- `profiles`: which models, benchmarks and questions (testbed | paper | tiny); `sizes`: how many;
- `runners`: the runners and splits of the book's experiments.

Below `vtr.chapters`, `vtr.integrations` and `vtr.cli`; above the engine, methods, searches,
evaluation loop, testbed and model loading.
"""
