/**
 * Keep only some GPU architectures' machine code in a CUDA shared library.
 *
 * A CUDA library carries its kernels in the ELF section `.nv_fatbin`: a run
 * of fat binaries, each a header (magic 0xBA55ED50, version, header size,
 * size of what follows) and entries (kind, version, header size, padded
 * payload size, ..., the SM architecture at byte 28 of the entry's header),
 * one per architecture each kernel was built for. The CUDA runtime picks the
 * entry for the GPU it runs on. ONNX Runtime's CUDA provider carries sm_75
 * to sm_120: 166 MB, of which a Hopper GPU (sm_90) reads 32 MB.
 *
 * Pruning zeroes the payloads of the other architectures in place: the
 * file keeps its size and layout (nothing to relink; the headers still say
 * what was there), and the zeros compress to almost nothing, which is what
 * lets the provider travel to a machine with no network (scripts/gpu-bundle.ts).
 * A pruned library runs only on the kept architectures.
 */

const FATBIN_MAGIC = 0xba55ed50;

export interface PruneReport {
  /** Payload bytes per architecture (e.g. 90 for sm_90), before pruning. */
  architectures: Record<number, number>;
  zeroedBytes: number;
}

/** The file offset and size of an ELF64 section, by name. */
function elfSection(file: Uint8Array, name: string): { offset: number; size: number } | undefined {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (view.getUint32(0) !== 0x7f454c46 || file[4] !== 2 || file[5] !== 1) throw new RangeError('not a little-endian 64-bit ELF file');
  const shoff = Number(view.getBigUint64(0x28, true));
  const shentsize = view.getUint16(0x3a, true);
  const shnum = view.getUint16(0x3c, true);
  const strtab = shoff + view.getUint16(0x3e, true) * shentsize;
  const namesAt = Number(view.getBigUint64(strtab + 24, true));
  const decoder = new TextDecoder();
  for (let i = 0; i < shnum; i++) {
    const h = shoff + i * shentsize;
    const at = namesAt + view.getUint32(h, true);
    const end = file.indexOf(0, at);
    if (decoder.decode(file.subarray(at, end)) === name) return { offset: Number(view.getBigUint64(h + 24, true)), size: Number(view.getBigUint64(h + 32, true)) };
  }
  return undefined;
}

/**
 * Zero every `.nv_fatbin` payload whose architecture is not in `keep`, in place.
 * @throws RangeError, the file untouched, when it has no fat binary or none of its entries is for a kept architecture.
 */
export function pruneFatbins(file: Uint8Array, keep: ReadonlySet<number>): PruneReport {
  const section = elfSection(file, '.nv_fatbin');
  if (!section) throw new RangeError('the library has no .nv_fatbin section: no CUDA kernels to prune');
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const report: PruneReport = { architectures: {}, zeroedBytes: 0 };
  const payloads: { at: number; size: number; arch: number }[] = [];
  let pos = section.offset;
  const end = section.offset + section.size;
  while (pos + 16 <= end) {
    if (view.getUint32(pos, true) !== FATBIN_MAGIC) {
      pos += 8; // fat binaries are 8-byte aligned, with padding between
      continue;
    }
    const headerSize = view.getUint16(pos + 6, true);
    const entriesEnd = pos + headerSize + Number(view.getBigUint64(pos + 8, true));
    if (entriesEnd > end) throw new RangeError(`a fat binary at ${pos} runs past the section's end`);
    for (let e = pos + headerSize; e < entriesEnd; ) {
      const entryHeader = view.getUint32(e + 4, true);
      const size = Number(view.getBigUint64(e + 8, true));
      const arch = view.getUint32(e + 28, true);
      payloads.push({ at: e + entryHeader, size, arch });
      report.architectures[arch] = (report.architectures[arch] ?? 0) + size;
      e += entryHeader + size;
    }
    pos = entriesEnd;
  }
  if (![...keep].some((a) => report.architectures[a])) {
    throw new RangeError(`the library has no code for sm_${[...keep].join(', sm_')}; it has sm_${Object.keys(report.architectures).join(', sm_')}`);
  }
  for (const p of payloads) {
    if (keep.has(p.arch)) continue;
    file.fill(0, p.at, p.at + p.size);
    report.zeroedBytes += p.size;
  }
  return report;
}
