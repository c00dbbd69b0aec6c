// Features as .npy files. The reader/writer itself is TensorModule's `NPY` (one implementation
// in the package: a second public `NPY` here would make the name ambiguous for every module
// that imports both).

import Foundation
import TensorModule

extension Features {
    /// Writes the features as a float32 `.npy`: `[bands, frames]` (NeMo's layout, what
    /// `preprocessor.ts` returns without its batch axis) when `bandMajor`, else `[frames, bands]`.
    public func writeNPY(to url: URL, bandMajor: Bool = true) throws {
        if bandMajor {
            try NPY.write(self.bandMajor(), shape: [bands, frames], to: url)
        } else {
            try NPY.write(values, shape: [frames, bands], to: url)
        }
    }
}
