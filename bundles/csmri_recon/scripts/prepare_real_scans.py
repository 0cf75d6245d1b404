"""Real T1 test volumes from the package registries, as NIfTI, in the folder given (none of them used for training).

mkdir -p ~/real_dl && cd ~/real_dl
apt-get download insighttoolkit5-examples && dpkg-deb -x insighttoolkit5-examples_*.deb itk
pip install versioneer wheel setuptools numpy pynrrd
pip download --no-deps --no-build-isolation pyradiomics==3.0.1 -d . && tar xzf pyradiomics-3.0.1.tar.gz
python bundles/csmri_recon/scripts/prepare_real_scans.py ~/real_dl ~/real_t1   (from the repository root)
"""

import shutil
import sys
from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np

src, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
itk = next(src.glob("itk/usr/share/doc/insighttoolkit5-examples/examples/Data/KmeansTest_T1UCharRaw.nii.gz"))
shutil.copy(itk, out / "itk_KmeansTest_T1UCharRaw.nii.gz")
for name in ("brain1", "brain2"):
    data, header = nrrd.read(str(next(src.glob(f"pyradiomics-*/data/{name}_image.nrrd"))))
    affine = np.eye(4)
    affine[:3, :3] = np.asarray(header["space directions"], dtype=float).T
    affine[:3, 3] = header["space origin"]
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine  # NRRD's left-posterior-superior to NIfTI's RAS
    nib.save(nib.Nifti1Image(data.astype(np.int16), affine), out / f"pyradiomics_{name}.nii.gz")
print(sorted(p.name for p in out.iterdir()))
