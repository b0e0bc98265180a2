/** Search by an image the user drops, picks or pastes (POST /search). */
import { useEffect, useState } from 'preact/hooks';
import { api, SEARCH_MAX_IMAGE_BYTES, type NeighborsResult } from '../api';
import { ErrorBanner, messageOf, NeighborGrid } from '../ui';

const MIB = 1024 * 1024;

export function SearchPage({ params }: { params: URLSearchParams }) {
  const k = params.get('k') ?? '10';
  const [file, setFile] = useState<File>();
  const [preview, setPreview] = useState<string>();
  const [result, setResult] = useState<NeighborsResult>();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const [dragging, setDragging] = useState(false);

  const search = async (f: File) => {
    setFile(f);
    setResult(undefined);
    setError(undefined);
    if (preview) URL.revokeObjectURL(preview);
    setPreview(f.type.startsWith('image/') ? URL.createObjectURL(f) : undefined);
    if (f.size > SEARCH_MAX_IMAGE_BYTES) {
      setError(
        `${f.name || 'This image'} is ${(f.size / MIB).toFixed(1)} MiB; search takes images of at most ${SEARCH_MAX_IMAGE_BYTES / MIB} MiB. Resize or recompress it, or upload it to the images bucket and open it from the gallery.`,
      );
      return;
    }
    setBusy(true);
    try {
      // The API takes any image/* type and reads the format from the bytes.
      const contentType = f.type.startsWith('image/') ? f.type : 'image/unknown';
      setResult(await api<NeighborsResult>('POST', `/search?${new URLSearchParams({ k })}`, { bytes: f, contentType }));
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  // Paste an image anywhere on the page.
  useEffect(() => {
    const onPaste = (e: ClipboardEvent) => {
      const item = [...(e.clipboardData?.items ?? [])].find((i) => i.kind === 'file' && i.type.startsWith('image/'));
      const pasted = item?.getAsFile();
      if (pasted) {
        e.preventDefault();
        void search(pasted);
      }
    };
    addEventListener('paste', onPaste);
    return () => removeEventListener('paste', onPaste);
  });

  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setDragging(false);
    const dropped = e.dataTransfer?.files[0];
    if (dropped) void search(dropped);
  };

  return (
    <>
      <h1>Search by image</h1>
      <label
        class={`dropzone${dragging ? ' dragging' : ''}`}
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={onDrop}
      >
        <span>Drop an image here, paste one, or choose a file (at most {SEARCH_MAX_IMAGE_BYTES / MIB} MiB).</span>
        <input
          data-testid="search-file-input"
          type="file"
          accept="image/*"
          onChange={(e) => {
            const chosen = (e.currentTarget as HTMLInputElement).files?.[0];
            if (chosen) void search(chosen);
          }}
        />
      </label>
      {file && (
        <div class="query">
          {preview && <img src={preview} alt={`query: ${file.name}`} width={128} height={128} class="query-preview" />}
          <span>
            {file.name || 'pasted image'}, {(file.size / 1024).toFixed(0)} KiB{busy ? ': searching…' : ''}
          </span>
        </div>
      )}
      <ErrorBanner error={error} />
      {result && (
        <p>
          {result.neighbors.length} nearest images by {result.query.modelVersion}:
        </p>
      )}
      {result && <NeighborGrid neighbors={result.neighbors} label="Search results, nearest first" testid="search-result" />}
    </>
  );
}
