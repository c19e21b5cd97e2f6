"""v1's ``azureml.contrib`` packages that scoring scripts import (``contrib.services``)."""
