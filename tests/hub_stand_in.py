"""A stand-in for the Hugging Face Hub, for tests: what is pushed (transformers' `push_to_hub`, `HfApi.upload_folder`)
is committed into a local hub cache laid out as downloads leave it, so that `from_pretrained("user/repo")` with
HF_HUB_OFFLINE=1 and that cache reads back exactly what was uploaded. Install it over transformers' Hub client with
`install(monkeypatch, cache_dir)`."""

import hashlib
import os
import shutil

from huggingface_hub import CommitInfo, CommitOperationAdd, CommitOperationDelete, HfApi, ModelCard
from huggingface_hub.hf_api import RepoUrl


class StandInHub(HfApi):
    def __init__(self, cache_dir: str):
        super().__init__()
        self.cache_dir, self.commits = cache_dir, []

    def repo_folder(self, repo_id: str) -> str:
        return os.path.join(self.cache_dir, "models--" + repo_id.replace("/", "--"))

    def create_repo(self, repo_id: str, **kwargs) -> RepoUrl:
        os.makedirs(os.path.join(self.repo_folder(repo_id), "refs"), exist_ok=True)
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def _validate_yaml(self, content: str, **kwargs) -> None:
        """The Hub's check of a model card's metadata, done here: ValueError if its YAML does not parse."""
        ModelCard(content)

    def create_commit(self, repo_id: str, operations, commit_message: str = "", **kwargs) -> CommitInfo:
        """A new snapshot: the previous one with these files added or deleted; refs/main points to it."""
        repo = self.repo_folder(repo_id)
        if not os.path.isdir(os.path.join(repo, "refs")):
            raise ValueError(f"repository {repo_id} does not exist (create_repo first)")
        ref = os.path.join(repo, "refs", "main")
        previous = open(ref).read() if os.path.isfile(ref) else None
        digest = hashlib.sha1(f"{previous} {len(self.commits)} {commit_message}".encode()).hexdigest()
        snapshot = os.path.join(repo, "snapshots", digest)
        if previous:
            shutil.copytree(os.path.join(repo, "snapshots", previous), snapshot)
        os.makedirs(snapshot, exist_ok=True)
        for operation in operations:
            path = os.path.join(snapshot, operation.path_in_repo)
            if isinstance(operation, CommitOperationAdd):
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with operation.as_file() as source, open(path, "wb") as target:
                    shutil.copyfileobj(source, target)
            elif isinstance(operation, CommitOperationDelete):
                os.remove(path)
        with open(ref, "w") as handle:
            handle.write(digest)
        self.commits.append((repo_id, commit_message, sorted(op.path_in_repo for op in operations)))
        return CommitInfo(commit_url=f"https://huggingface.co/{repo_id}/commit/{digest}", commit_message=commit_message,
                          commit_description="", oid=digest, pr_url=None)


def install(monkeypatch, cache_dir: str) -> StandInHub:
    """transformers' Hub client becomes the stand-in; the hub library reads its cache offline."""
    import huggingface_hub.constants
    import huggingface_hub.hf_api
    import transformers.utils.hub

    hub = StandInHub(cache_dir)
    monkeypatch.setattr(transformers.utils.hub, "_hf_api", hub)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", cache_dir)
    # Uploads take the one-commit path (the stand-in does not speak Xet's chunked transfer protocol).
    monkeypatch.setattr(huggingface_hub.hf_api, "is_xet_available", lambda: False)
    return hub
