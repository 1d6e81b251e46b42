"""Runner images: one ECR repository per language and the image the Kubernetes Jobs run.

Every folder runners/<language>/ with a language.json is one image (nothing here names a language).
The build context is runners/ itself, so each Dockerfile can copy the shared runner program
(runners/runner) next to its own folder; the other languages' folders are excluded from the context so
a change to one language does not rebuild the others.
"""

from __future__ import annotations

import os
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from cdk_ecr_deployment import DockerImageName, ECRDeployment
from constructs import Construct, IConstruct

from cdk.config import DeploySettings
from cdk.lifecycle import removal_policy
from cdk.nag import acknowledge
from functions.core.languages import LanguageSpec, load_registry

# Untagged layers left behind by superseded images are useless after a day; keep a few tagged images so
# a rollback to the previous deploy still finds its image.
UNTAGGED_EXPIRY_DAYS = 1
TAGGED_IMAGES_KEPT = 10
PLATFORMS = {"linux/amd64": ecr_assets.Platform.LINUX_AMD64, "linux/arm64": ecr_assets.Platform.LINUX_ARM64}


def repository_name(settings: DeploySettings, language: LanguageSpec) -> str:
    """The last path segment is the language's `image`, the convention the Kubernetes side maps by."""
    if settings.image_source == "registry":
        return language.image  # made by `make create-ecr-repos`, shared by the environments
    return f"code-exec-{settings.environment}/{language.image}"


class RunnerImages(Construct):
    """Repositories and images; `image_uris` maps language name -> image reference for the Lambda."""

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploySettings, runners_dir: Path
    ) -> None:
        super().__init__(scope, construct_id)
        self.languages = load_registry(runners_dir).all()
        self.image_uris: dict[str, str] = {}
        self.repositories: dict[str, ecr.IRepository] = {}
        # Constructs the Lambda must be created after (the image copies), so it never points at a tag
        # that does not exist yet.
        self.deployments: list[IConstruct] = []
        if settings.image_source == "registry":
            self._reference_pushed_images(settings)
        else:
            self._build_and_copy_images(settings, runners_dir)
        self.image_prefix = self._image_prefix(settings)

    def _image_prefix(self, settings: DeploySettings) -> str:
        """What every runner image reference starts with: the admission policy admits only these images."""
        stack = cdk.Stack.of(self)
        names = [repository_name(settings, language) for language in self.languages]
        # Character by character on purpose: ".../code-exec-runner-" admits those repositories, not the path.
        shared = os.path.commonprefix(names)  # noqa: RUF071
        return f"{stack.account}.dkr.ecr.{stack.region}.{stack.url_suffix}/{shared}"

    def _reference_pushed_images(self, settings: DeploySettings) -> None:
        for language in self.languages:
            repository = ecr.Repository.from_repository_name(
                self, f"{language.name}Repository", repository_name(settings, language)
            )
            self.repositories[language.name] = repository
            self.image_uris[language.name] = repository.repository_uri_for_tag(settings.image_tag)

    def _build_and_copy_images(self, settings: DeploySettings, runners_dir: Path) -> None:
        copy_role = iam.Role(
            self,
            "CopyRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Copies the runner image assets into the per-language ECR repositories at deploy",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWSLambdaBasicExecutionRole")
            ],
        )
        for language in self.languages:
            repository = self._repository(settings, language)
            asset = ecr_assets.DockerImageAsset(
                self,
                f"{language.name}Image",
                directory=str(runners_dir),
                file=f"{language.name}/Dockerfile",
                platform=PLATFORMS[settings.image_platform],
                exclude=self._context_excludes(language),
                asset_name=f"runner-{language.name}",
            )
            # Content-addressed tag: immutable tags never collide, and an unchanged image copies nothing.
            image_uri = f"{repository.repository_uri}:{asset.asset_hash}"
            asset.repository.grant_pull(copy_role)
            repository.grant_pull_push(copy_role)
            deployment = ECRDeployment(
                self,
                f"{language.name}ImageCopy",
                src=DockerImageName(asset.image_uri),
                dest=DockerImageName(image_uri),
                image_arch=[settings.image_platform.removeprefix("linux/")],
                # The construct would add ECR and S3 rights on "*"; the grants above name the two
                # repositories instead (GetAuthorizationToken alone has no resource-level form).
                role=copy_role.without_policy_updates(),
            )
            self.repositories[language.name] = repository
            self.image_uris[language.name] = image_uri
            self.deployments.append(deployment)
        self._acknowledge_copy_function(copy_role)
        self._adopt_copy_function_logs(settings)

    def _repository(self, settings: DeploySettings, language: LanguageSpec) -> ecr.Repository:
        repository = ecr.Repository(
            self,
            f"{language.name}Repository",
            repository_name=repository_name(settings, language),
            image_scan_on_push=True,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            encryption=ecr.RepositoryEncryption.AES_256,
            # prod keeps its images when the stack goes (a rollback or audit may need them); dev cleans up.
            removal_policy=removal_policy(settings),
            empty_on_delete=not settings.is_prod,
        )
        repository.add_lifecycle_rule(
            description="drop untagged layers of superseded images",
            tag_status=ecr.TagStatus.UNTAGGED,
            max_image_age=cdk.Duration.days(UNTAGGED_EXPIRY_DAYS),
        )
        repository.add_lifecycle_rule(
            description="keep the newest tagged images for rollbacks",
            tag_status=ecr.TagStatus.ANY,
            max_image_count=TAGGED_IMAGES_KEPT,
        )
        return repository

    def _context_excludes(self, language: LanguageSpec) -> list[str]:
        others = [other.name for other in self.languages if other.name != language.name]
        return [*others, "**/__pycache__", "**/*.pyc", "**/tests", "**/.pytest_cache"]

    def _adopt_copy_function_logs(self, settings: DeploySettings) -> None:
        """The copy function's log group (made by cdk-ecr-deployment) follows our retention and removal."""
        for construct in cdk.Stack.of(self).node.find_all():
            if isinstance(construct, logs.CfnLogGroup) and "CDKECRDeployment" in construct.node.path:
                construct.retention_in_days = settings.log_retention_days
                construct.apply_removal_policy(removal_policy(settings))

    def _acknowledge_copy_function(self, copy_role: iam.Role) -> None:
        acknowledge(
            copy_role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "The image-copy function (cdk-ecr-deployment) only writes its own logs; its log group name is "
            "generated after the role exists, so the AWS managed basic execution policy is the narrow option.",
        )
        acknowledge(
            copy_role,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken has no resource-level permissions; every other ECR action is granted "
            "on the asset repository and the four runner repositories by name.",
        )
