# The source repository and the one image registry every environment pulls from.

resource "aws_codecommit_repository" "this" {
  #checkov:skip=CKV2_AWS_37:Approval rule templates need a pull-request workflow and named approvers, which are organisation-specific; the pipeline's manual approval gates production.
  repository_name = var.name
  description     = "Source of the ${var.name} service; pushes to ${var.repository_branch} deploy to test, then (approved) to prod."
  default_branch  = var.repository_branch
}

# --- container registry ---------------------------------------------------------

resource "aws_ecr_repository" "this" {
  name                 = var.name
  image_tag_mutability = "IMMUTABLE" # a tag is a commit id and never moves

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = module.kms.key_arn
  }
}

resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Expire untagged images after 7 days"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = 7
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "Keep the newest ${var.ecr_keep_images} tagged images"
        selection = {
          tagStatus   = "any"
          countType   = "imageCountMoreThan"
          countNumber = var.ecr_keep_images
        }
        action = { type = "expire" }
      },
    ]
  })
}

