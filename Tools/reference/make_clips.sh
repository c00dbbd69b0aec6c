#!/usr/bin/env bash
# Synthesises the test clips with espeak-ng and converts them with sox to 16 kHz mono 16-bit WAV,
# cut (or zero-padded) to an exact sample count. The committed clips are the reference; this script
# documents how they were made (espeak-ng/sox versions may change the audio slightly).
set -euo pipefail
OUT="${1:-$(cd "$(dirname "$0")/../.." && pwd)/Tests/Fixtures/clips}"
mkdir -p "$OUT"
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT

# name lang samples text
clip() {
  local name=$1 lang=$2 samples=$3 text=$4
  espeak-ng -v "$lang" -s 150 -w "$TMP/$name.raw.wav" "$text"
  # -D: no dither (deterministic); pad 1 s of silence then cut to the exact sample count
  sox -D "$TMP/$name.raw.wav" -r 16000 -c 1 -b 16 -e signed-integer "$TMP/$name.16k.wav" pad 0 30
  sox -D "$TMP/$name.16k.wav" -b 16 "$OUT/$name.wav" trim 0 "${samples}s"
  echo "$name: $(soxi -s "$OUT/$name.wav") samples"
}

clip hi_short hi 9000 "नमस्ते"
clip hi_1s    hi 16000 "नमस्ते दोस्त"
clip hi_4s    hi 64123 "आज मौसम बहुत अच्छा है और हम बाज़ार जा रहे हैं।"
clip ta_3s    ta 48517 "வணக்கம், இன்று வானிலை மிகவும் நன்றாக உள்ளது."
clip bn_6s    bn 96001 "আমার নাম রবি। আমি কলকাতায় থাকি এবং প্রতিদিন সকালে বই পড়ি। আজ আকাশ খুব পরিষ্কার।"
clip te_10s   te 160079 "తెలుగు భాష చాలా మధురమైనది. మా ఊరిలో ఒక పెద్ద చెరువు ఉంది. ప్రతి రోజు ఉదయం నేను అక్కడ నడవడానికి వెళ్తాను. పిల్లలు పాఠశాలకు వెళ్తారు. సాయంత్రం అందరూ కలిసి ఆడుకుంటారు."
clip hi_22s   hi 352321 "भारत एक विशाल देश है जहाँ अनेक भाषाएँ बोली जाती हैं। हर राज्य की अपनी संस्कृति, अपना भोजन और अपने त्योहार हैं। बच्चे सुबह स्कूल जाते हैं और शाम को मैदान में खेलते हैं। किसान खेतों में मेहनत करते हैं ताकि सबको अनाज मिल सके। रेलगाड़ी से यात्रा करना बहुत सुखद अनुभव होता है। पहाड़ों पर ठंडी हवा चलती है और नदियाँ कल कल बहती हैं। शाम को परिवार के सभी लोग साथ बैठकर खाना खाते हैं और दिन भर की बातें करते हैं।"
