"""The AWS platform: EKS with Karpenter GPU NodePools, ECR and S3."""
