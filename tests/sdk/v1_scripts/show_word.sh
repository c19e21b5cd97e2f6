# Run as `sh show_word.sh WORD`: no Python involved.
echo "the word is $1"
