"""The AWS platform: EKS with Karpenter GPU NodePools, ECR and S3 (see platform.py)."""

from components.aws.platform import AwsPlatform, AwsPlatformArgs

__all__ = ["AwsPlatform", "AwsPlatformArgs"]
