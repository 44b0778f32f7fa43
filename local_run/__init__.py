"""The local run: a real Synapse, moto with Step Functions execution, the real handlers.

Every botocore Session in a process of the local run (its servers, the demo, the tests) shares
one data loader: each Session would otherwise parse the service models it uses again (moto's
import alone makes three Sessions that each read EC2's, the largest), and the suite makes
thousands of clients. The models are files that do not change while a process runs. The
functions' own processes (lambda_worker.py) do not import this: a cold start there loads what it
would load on AWS."""

import botocore.loaders
import botocore.session


class _SearchPaths(list):
    """boto3 appends its data folder to its Session's loader: once is enough for a shared one."""
    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


_loaders: dict[str | None, botocore.loaders.Loader] = {}


def _shared_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
    if search_path_string not in _loaders:
        loader = botocore.loaders.create_loader(search_path_string)
        loader._search_paths = _SearchPaths(loader.search_paths)
        _loaders[search_path_string] = loader
    return _loaders[search_path_string]


botocore.session.create_loader = _shared_loader
