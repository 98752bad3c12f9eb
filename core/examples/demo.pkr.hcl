# A demo whose provisioners succeed inside the local cloud's sandbox:
#   amibake build --local demo.pkr.hcl
variable "region" {
  type    = string
  default = "us-east-1"
}

variable "app_version" {
  type    = string
  default = "1.0.0"
}

locals {
  stamp = formatdate("YYYYMMDDhhmmss", timestamp())
}

source "amazon-ebs" "demo" {
  region        = var.region
  instance_type = "t3.micro"
  ssh_username  = "ubuntu"
  ami_name      = "amibake-demo-${local.stamp}"
  ami_regions   = ["us-west-2"]

  source_ami_filter {
    filters = {
      name                = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"
      virtualization-type = "hvm"
    }
    owners      = ["099720109477"]
    most_recent = true
  }

  tags = {
    Name    = "amibake-demo"
    Version = var.app_version
  }
  snapshot_tags = {
    Name = "amibake-demo-root"
  }
}

build {
  sources = ["source.amazon-ebs.demo"]

  provisioner "file" {
    source      = "files/motd"
    destination = "/home/ubuntu/motd"
  }

  provisioner "shell" {
    environment_vars = ["APP_VERSION=${var.app_version}"]
    inline = [
      "echo \"installing demo app $APP_VERSION as $(whoami) on $(hostname)\"",
      # /opt is root's on a cloud image; the local sandbox without overlay roots has no sudo
      "sudo install -d -o \"$(id -un)\" /opt/demo 2>/dev/null || mkdir -p /opt/demo",
      "echo \"$APP_VERSION\" > /opt/demo/VERSION",
      "cp ~/motd /opt/demo/motd",
      "ls -l /opt/demo",
    ]
  }

  post-processor "manifest" {
    output = "amibake-demo-manifest.json"
  }
}
