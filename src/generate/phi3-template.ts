/**
 * The chat template of microsoft/Phi-3-mini-4k-instruct (as in its GGUF's tokenizer.chat_template),
 * used when a file has none and written into synthetic models.
 */
export const PHI3_CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') %}{{'<|user|>' + '\n' + message['content'] + '<|end|>' + '\n' + '<|assistant|>' + '\n'}}{% elif (message['role'] == 'assistant') %}{{message['content'] + '<|end|>' + '\n'}}{% endif %}{% endfor %}";
