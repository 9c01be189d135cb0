# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
